//! Reproducible OCI image archives from static files, without a container engine.
//!
//! An archive is a tar holding an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) plus Docker-style `manifest.json` and `repositories` files, so both
//! `ctr images import` (which reads the `io.containerd.image.name` annotation) and every
//! version of `kind load image-archive` (which reads the annotation, `RepoTags` or
//! `repositories`, whichever comes first) find the image's name. The same inputs always give the same bytes: entries
//! are sorted, owners and times are fixed, gzip carries no timestamp.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Annotation containerd reads for the image name on import.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI reference-name annotation (here: the full reference, as containerd accepts it).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Timestamp written into the config: fixed, so rebuilding gives the same digest.
const CREATED: &str = "1970-01-01T00:00:00Z";

/// Errors from building or verifying an archive.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid --file `{0}`: expected HOST_PATH:IMAGE_PATH[:OCTAL_MODE]")]
    FileSpec(String),
    #[error("invalid --symlink `{0}`: expected IMAGE_PATH:TARGET")]
    SymlinkSpec(String),
    #[error("symlink `{0}` is a parent of `{1}`: a symlink cannot hold entries")]
    SymlinkParent(String, String),
    #[error("invalid path in image `{0}`: must be absolute, without `.` or `..` parts")]
    ImagePath(String),
    #[error("`{0}` appears twice in the image")]
    Duplicate(String),
    #[error("invalid image reference `{0}`: expected NAME:TAG, e.g. localhost/app:0.1.0")]
    Reference(String),
    #[error("invalid --env `{0}`: expected KEY=VALUE")]
    Env(String),
    #[error("the image needs an entrypoint or a command (--entrypoint or --arg)")]
    NoEntrypoint,
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the archive is not a readable tar: {0}")]
    Tar(#[source] std::io::Error),
    #[error("the archive has no `{0}`")]
    Missing(String),
    #[error("`{entry}` is not valid JSON of the expected shape: {reason}")]
    Json { entry: String, reason: String },
    #[error("blob {digest}: {problem}")]
    Blob { digest: String, problem: String },
    #[error("{0}")]
    Inconsistent(String),
}

/// A host file to put into the image: `HOST_PATH:IMAGE_PATH[:OCTAL_MODE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub host: PathBuf,
    pub image_path: String,
    /// Permission bits; when absent, 0755 for host files with an execute bit, else 0644.
    pub mode: Option<u32>,
}

impl FromStr for FileSpec {
    type Err = OciError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || OciError::FileSpec(text.to_owned());
        let mut parts = text.split(':');
        let host = parts
            .next()
            .filter(|part| !part.is_empty())
            .ok_or_else(invalid)?;
        let image_path = parts
            .next()
            .filter(|part| !part.is_empty())
            .ok_or_else(invalid)?;
        let mode = match parts.next() {
            Some(mode) => Some(u32::from_str_radix(mode, 8).map_err(|_| invalid())?),
            None => None,
        };
        if parts.next().is_some() || mode.is_some_and(|mode| mode > 0o7777) {
            return Err(invalid());
        }
        Ok(Self {
            host: PathBuf::from(host),
            image_path: image_path.to_owned(),
            mode,
        })
    }
}

/// A symbolic link to put into the image: `IMAGE_PATH:TARGET`, e.g. `/bin/sh:busybox`.
/// The target is stored as given (relative targets resolve from the link's directory, as
/// on any filesystem; absolute ones from the container's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkSpec {
    pub image_path: String,
    pub target: String,
}

impl FromStr for SymlinkSpec {
    type Err = OciError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || OciError::SymlinkSpec(text.to_owned());
        let (image_path, target) = text.split_once(':').ok_or_else(invalid)?;
        if image_path.is_empty() || target.is_empty() || target.contains('\0') {
            return Err(invalid());
        }
        Ok(Self {
            image_path: image_path.to_owned(),
            target: target.to_owned(),
        })
    }
}

/// Everything that goes into one image.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// Full reference, e.g. `localhost/autoscale-conformance/inference-server:0.1.0`.
    pub reference: String,
    pub files: Vec<FileSpec>,
    /// Symbolic links (owned by root, mode 0777, time 0, like every entry).
    pub symlinks: Vec<SymlinkSpec>,
    /// Empty directories to create (e.g. `/tmp`), with their modes.
    pub directories: Vec<(String, u32)>,
    /// The config's `Entrypoint`; may be empty when `args` is not (then the image has no
    /// `Entrypoint` and `Cmd` is the command, as in upstream's busybox image).
    pub entrypoint: Vec<String>,
    /// Default arguments (the config's `Cmd`; a Pod's `args` replace them).
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// e.g. `8080/tcp`.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// OCI architecture name, e.g. `amd64`.
    pub architecture: String,
    /// Gzip the layer (the default) or store it as plain tar.
    pub compress: bool,
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltImage {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    pub archive_size: u64,
}

/// A blob as an OCI descriptor sees it.
#[derive(Debug, Clone)]
struct Blob {
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.bytes.len() })
    }

    fn path(&self) -> String {
        blob_path(&self.digest)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(71);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// `/usr/bin/app` → `usr/bin/app`, refusing relative paths and `.`/`..` parts.
fn normalize_image_path(path: &str) -> Result<String, OciError> {
    let invalid = || OciError::ImagePath(path.to_owned());
    let relative = path.strip_prefix('/').ok_or_else(invalid)?;
    let parts: Vec<&str> = relative
        .split('/')
        .filter(|part| !part.is_empty())
        .collect();
    if parts.is_empty() || parts.iter().any(|part| *part == "." || *part == "..") {
        return Err(invalid());
    }
    Ok(parts.join("/"))
}

fn check_reference(reference: &str) -> Result<(), OciError> {
    let invalid = || OciError::Reference(reference.to_owned());
    let last_part = reference.rsplit('/').next().unwrap_or_default();
    let has_tag = last_part
        .split_once(':')
        .is_some_and(|(name, tag)| !name.is_empty() && !tag.is_empty());
    if reference.chars().any(char::is_whitespace) || !has_tag {
        return Err(invalid());
    }
    Ok(())
}

enum LayerEntry {
    Directory { mode: u32 },
    File { host: PathBuf, mode: u32 },
    Symlink { target: String },
}

fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// The layer as an uncompressed tar: parents first, entries sorted, owners and times fixed.
fn layer_tar(spec: &ImageSpec) -> Result<Vec<u8>, OciError> {
    let mut entries: BTreeMap<String, LayerEntry> = BTreeMap::new();
    let add_parents = |entries: &mut BTreeMap<String, LayerEntry>, path: &str| {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            entries
                .entry(prefix.clone())
                .or_insert(LayerEntry::Directory { mode: 0o755 });
        }
    };
    for (path, mode) in &spec.directories {
        let path = normalize_image_path(path)?;
        add_parents(&mut entries, &path);
        entries.insert(path, LayerEntry::Directory { mode: *mode });
    }
    for file in &spec.files {
        let path = normalize_image_path(&file.image_path)?;
        add_parents(&mut entries, &path);
        let metadata = fs::metadata(&file.host).map_err(|source| OciError::Read {
            path: file.host.clone(),
            source,
        })?;
        let mode = file.mode.unwrap_or({
            use std::os::unix::fs::PermissionsExt;
            if metadata.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            }
        });
        let previous = entries.insert(
            path.clone(),
            LayerEntry::File {
                host: file.host.clone(),
                mode,
            },
        );
        if previous.is_some() {
            return Err(OciError::Duplicate(file.image_path.clone()));
        }
    }
    for link in &spec.symlinks {
        let path = normalize_image_path(&link.image_path)?;
        add_parents(&mut entries, &path);
        let previous = entries.insert(
            path,
            LayerEntry::Symlink {
                target: link.target.clone(),
            },
        );
        if previous.is_some() {
            return Err(OciError::Duplicate(link.image_path.clone()));
        }
    }
    // A link cannot be a directory other entries sit in (`/lib64` -> `lib` and then
    // `/lib64/x`): the tar would hold a path through a symlink.
    for (path, entry) in &entries {
        if let LayerEntry::Symlink { .. } = entry {
            let inside = format!("{path}/");
            if let Some((child, _)) = entries.range(inside.clone()..).next()
                && child.starts_with(&inside)
            {
                return Err(OciError::SymlinkParent(
                    format!("/{path}"),
                    format!("/{child}"),
                ));
            }
        }
    }

    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in &entries {
        let written = match entry {
            LayerEntry::Directory { mode } => {
                let mut header = tar_header(tar::EntryType::Directory, *mode, 0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())
            }
            LayerEntry::File { host, mode } => {
                let bytes = fs::read(host).map_err(|source| OciError::Read {
                    path: host.clone(),
                    source,
                })?;
                let mut header = tar_header(tar::EntryType::Regular, *mode, bytes.len() as u64);
                builder.append_data(&mut header, path, bytes.as_slice())
            }
            LayerEntry::Symlink { target } => {
                let mut header = tar_header(tar::EntryType::Symlink, 0o777, 0);
                builder.append_link(&mut header, path, target)
            }
        };
        written.map_err(OciError::Tar)?;
    }
    builder.into_inner().map_err(OciError::Tar)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // No file name and mtime 0 in the gzip header: the output depends on the input only.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(bytes)
        .expect("compressing into memory cannot fail");
    encoder
        .finish()
        .expect("compressing into memory cannot fail")
}

/// The image config JSON (OCI image spec `config` object).
fn config_json(spec: &ImageSpec, diff_id: &str) -> Result<Vec<u8>, OciError> {
    for pair in &spec.env {
        if pair.split_once('=').is_none_or(|(key, _)| key.is_empty()) {
            return Err(OciError::Env(pair.clone()));
        }
    }
    let mut env = spec.env.clone();
    if !env.iter().any(|pair| pair.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        );
    }
    let mut config = serde_json::Map::new();
    if let Some(user) = &spec.user {
        config.insert("User".into(), json!(user));
    }
    if !spec.exposed_ports.is_empty() {
        let ports: BTreeMap<&str, Value> = spec
            .exposed_ports
            .iter()
            .map(|port| (port.as_str(), json!({})))
            .collect();
        config.insert("ExposedPorts".into(), json!(ports));
    }
    config.insert("Env".into(), json!(env));
    if !spec.entrypoint.is_empty() {
        config.insert("Entrypoint".into(), json!(spec.entrypoint));
    }
    if !spec.args.is_empty() {
        config.insert("Cmd".into(), json!(spec.args));
    }
    config.insert(
        "WorkingDir".into(),
        json!(spec.workdir.clone().unwrap_or_else(|| "/".to_owned())),
    );
    if !spec.labels.is_empty() {
        config.insert("Labels".into(), json!(spec.labels));
    }
    let document = json!({
        "created": CREATED,
        "architecture": spec.architecture,
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": CREATED, "created_by": "oci-image build" }],
    });
    Ok(serde_json::to_vec(&document).expect("JSON values always serialize"))
}

/// Builds the archive for `spec` at `out` (written to a temporary file, then renamed).
pub fn build(spec: &ImageSpec, out: &Path) -> Result<BuiltImage, OciError> {
    check_reference(&spec.reference)?;
    if spec.entrypoint.is_empty() && spec.args.is_empty() {
        return Err(OciError::NoEntrypoint);
    }
    let layer_plain = layer_tar(spec)?;
    let diff_id = sha256_digest(&layer_plain);
    let (layer, layer_media) = if spec.compress {
        (Blob::new(gzip(&layer_plain)), MEDIA_LAYER_GZIP)
    } else {
        (Blob::new(layer_plain), MEDIA_LAYER_TAR)
    };
    let config = Blob::new(config_json(spec, &diff_id)?);
    let manifest = Blob::new(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(MEDIA_CONFIG),
            "layers": [layer.descriptor(layer_media)],
        }))
        .expect("JSON values always serialize"),
    );
    let mut manifest_descriptor = manifest.descriptor(MEDIA_MANIFEST);
    manifest_descriptor["platform"] = json!({ "architecture": spec.architecture, "os": "linux" });
    manifest_descriptor["annotations"] = json!({
        ANNOTATION_CONTAINERD_NAME: spec.reference,
        ANNOTATION_REF_NAME: spec.reference,
    });
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [manifest_descriptor],
    }))
    .expect("JSON values always serialize");
    let docker_manifest = serde_json::to_vec(&json!([{
        "Config": config.path(),
        "RepoTags": [spec.reference],
        "Layers": [layer.path()],
    }]))
    .expect("JSON values always serialize");
    // Docker's v1 `repositories` file: old `kind load image-archive` versions read names
    // only from it. Maps repository → tag → an image id (here the config digest's hex).
    let (repository, tag) = spec
        .reference
        .rsplit_once(':')
        .expect("check_reference guarantees a tag");
    let repositories = serde_json::to_vec(&json!({
        repository: { tag: config.digest.trim_start_matches("sha256:") }
    }))
    .expect("JSON values always serialize");
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec();

    let mut files: BTreeMap<String, &[u8]> = BTreeMap::new();
    for blob in [&layer, &config, &manifest] {
        files.insert(blob.path(), &blob.bytes);
    }
    files.insert("index.json".into(), &index);
    files.insert("manifest.json".into(), &docker_manifest);
    files.insert("oci-layout".into(), &layout);
    files.insert("repositories".into(), &repositories);

    let mut archive = tar::Builder::new(Vec::new());
    for directory in ["blobs/", "blobs/sha256/"] {
        let mut header = tar_header(tar::EntryType::Directory, 0o755, 0);
        archive
            .append_data(&mut header, directory, std::io::empty())
            .map_err(OciError::Tar)?;
    }
    for (path, bytes) in &files {
        let mut header = tar_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        archive
            .append_data(&mut header, path, *bytes)
            .map_err(OciError::Tar)?;
    }
    let archive = archive.into_inner().map_err(OciError::Tar)?;

    let write_error = |source| OciError::Write {
        path: out.to_owned(),
        source,
    };
    if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    let partial = out.with_extension("partial");
    fs::write(&partial, &archive).map_err(write_error)?;
    fs::rename(&partial, out).map_err(write_error)?;
    Ok(BuiltImage {
        reference: spec.reference.clone(),
        manifest_digest: manifest.digest,
        config_digest: config.digest,
        layer_digest: layer.digest,
        archive_size: archive.len() as u64,
    })
}

/// One image found and checked in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedImage {
    pub reference: Option<String>,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
}

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub images: Vec<VerifiedImage>,
    pub blobs_checked: usize,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn parse_json<T: for<'de> Deserialize<'de>>(entry: &str, bytes: &[u8]) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|error| OciError::Json {
        entry: entry.to_owned(),
        reason: error.to_string(),
    })
}

/// Reads every regular file of the archive into memory, keyed by normalized path.
fn read_archive(archive: &Path) -> Result<BTreeMap<String, Vec<u8>>, OciError> {
    let file = fs::File::open(archive).map_err(|source| OciError::Read {
        path: archive.to_owned(),
        source,
    })?;
    let mut reader = tar::Archive::new(std::io::BufReader::new(file));
    let mut files = BTreeMap::new();
    for entry in reader.entries().map_err(OciError::Tar)? {
        let mut entry = entry.map_err(OciError::Tar)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(OciError::Tar)?;
        let path = path.to_string_lossy().trim_start_matches("./").to_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(OciError::Tar)?;
        files.insert(path, bytes);
    }
    Ok(files)
}

/// Looks up the blob a descriptor names and checks its size and digest.
fn checked_blob<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    descriptor: &Descriptor,
    checked: &mut BTreeSet<String>,
) -> Result<&'a [u8], OciError> {
    let problem = |problem: String| OciError::Blob {
        digest: descriptor.digest.clone(),
        problem,
    };
    if !descriptor.digest.starts_with("sha256:") {
        return Err(problem("only sha256 digests are supported".into()));
    }
    let bytes = files
        .get(&blob_path(&descriptor.digest))
        .ok_or_else(|| problem("missing from the archive".into()))?;
    if bytes.len() as u64 != descriptor.size {
        return Err(problem(format!(
            "size is {} but the descriptor says {}",
            bytes.len(),
            descriptor.size
        )));
    }
    let actual = sha256_digest(bytes);
    if actual != descriptor.digest {
        return Err(problem(format!("content hashes to {actual}")));
    }
    checked.insert(descriptor.digest.clone());
    Ok(bytes)
}

/// Checks an archive: every blob that index → manifest → config → layers names exists with
/// the right size and digest, each layer's uncompressed digest matches the config's
/// `diff_ids`, and `manifest.json` (when present) agrees with the OCI manifest.
pub fn verify(archive: &Path) -> Result<Verification, OciError> {
    let files = read_archive(archive)?;
    let layout = files
        .get("oci-layout")
        .ok_or_else(|| OciError::Missing("oci-layout".into()))?;
    let layout: Value = parse_json("oci-layout", layout)?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        return Err(OciError::Inconsistent(
            "oci-layout is not imageLayoutVersion 1.0.0".into(),
        ));
    }
    let index: Index = parse_json(
        "index.json",
        files
            .get("index.json")
            .ok_or_else(|| OciError::Missing("index.json".into()))?,
    )?;
    if index.manifests.is_empty() {
        return Err(OciError::Inconsistent(
            "index.json lists no manifest".into(),
        ));
    }
    let mut checked = BTreeSet::new();
    let mut images = Vec::new();
    for descriptor in &index.manifests {
        if descriptor.media_type != MEDIA_MANIFEST {
            return Err(OciError::Inconsistent(format!(
                "index.json entry {} has media type {}, expected {MEDIA_MANIFEST}",
                descriptor.digest, descriptor.media_type
            )));
        }
        let manifest_bytes = checked_blob(&files, descriptor, &mut checked)?;
        let manifest: Manifest = parse_json(&descriptor.digest, manifest_bytes)?;
        if manifest.config.media_type != MEDIA_CONFIG {
            return Err(OciError::Inconsistent(format!(
                "config media type is {}",
                manifest.config.media_type
            )));
        }
        let config: Config = parse_json(
            &manifest.config.digest,
            checked_blob(&files, &manifest.config, &mut checked)?,
        )?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(OciError::Inconsistent(format!(
                "the manifest has {} layers but the config {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let bytes = checked_blob(&files, layer, &mut checked)?;
            let plain = match layer.media_type.as_str() {
                MEDIA_LAYER_GZIP => {
                    let mut plain = Vec::new();
                    GzDecoder::new(bytes)
                        .read_to_end(&mut plain)
                        .map_err(|error| OciError::Blob {
                            digest: layer.digest.clone(),
                            problem: format!("not valid gzip: {error}"),
                        })?;
                    plain
                }
                MEDIA_LAYER_TAR => bytes.to_vec(),
                other => {
                    return Err(OciError::Inconsistent(format!(
                        "layer {} has unsupported media type {other}",
                        layer.digest
                    )));
                }
            };
            let actual = sha256_digest(&plain);
            if &actual != diff_id {
                return Err(OciError::Blob {
                    digest: layer.digest.clone(),
                    problem: format!(
                        "uncompressed content hashes to {actual}, config says {diff_id}"
                    ),
                });
            }
        }
        let reference = descriptor
            .annotations
            .get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| descriptor.annotations.get(ANNOTATION_REF_NAME))
            .cloned();
        images.push((reference, descriptor.digest.clone(), manifest));
    }

    if let Some(bytes) = files.get("manifest.json") {
        let entries: Vec<DockerManifestEntry> = parse_json("manifest.json", bytes)?;
        for entry in &entries {
            let matching = images.iter().find(|(_, _, manifest)| {
                blob_path(&manifest.config.digest) == entry.config
                    && manifest.layers.len() == entry.layers.len()
                    && manifest
                        .layers
                        .iter()
                        .zip(&entry.layers)
                        .all(|(layer, path)| blob_path(&layer.digest) == *path)
            });
            let Some((reference, _, _)) = matching else {
                return Err(OciError::Inconsistent(format!(
                    "manifest.json entry for {} matches no OCI manifest",
                    entry.config
                )));
            };
            if let Some(reference) = reference
                && !entry.repo_tags.contains(reference)
            {
                return Err(OciError::Inconsistent(format!(
                    "manifest.json RepoTags {:?} do not name {reference}",
                    entry.repo_tags
                )));
            }
        }
    }

    if let Some(bytes) = files.get("repositories") {
        let repositories: BTreeMap<String, BTreeMap<String, String>> =
            parse_json("repositories", bytes)?;
        let named: BTreeSet<String> = repositories
            .iter()
            .flat_map(|(repository, tags)| {
                tags.keys().map(move |tag| format!("{repository}:{tag}"))
            })
            .collect();
        for (reference, _, _) in &images {
            if let Some(reference) = reference
                && !named.contains(reference)
            {
                return Err(OciError::Inconsistent(format!(
                    "`repositories` does not name {reference}"
                )));
            }
        }
    }

    let images = images
        .into_iter()
        .map(|(reference, manifest_digest, manifest)| VerifiedImage {
            reference,
            manifest_digest,
            config_digest: manifest.config.digest,
            layer_digests: manifest
                .layers
                .into_iter()
                .map(|layer| layer.digest)
                .collect(),
        })
        .collect();
    Ok(Verification {
        images,
        blobs_checked: checked.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs_parse() {
        let spec: FileSpec = "target/app:/app:0755".parse().unwrap();
        assert_eq!(spec.host, PathBuf::from("target/app"));
        assert_eq!(spec.image_path, "/app");
        assert_eq!(spec.mode, Some(0o755));
        assert_eq!("a:/b".parse::<FileSpec>().unwrap().mode, None);
        assert!("a".parse::<FileSpec>().is_err());
        assert!("a:/b:999".parse::<FileSpec>().is_err());
        assert!("a:/b:0644:x".parse::<FileSpec>().is_err());
    }

    #[test]
    fn symlink_specs_parse() {
        let spec: SymlinkSpec = "/usr/bin/wget:../../bin/busybox".parse().unwrap();
        assert_eq!(spec.image_path, "/usr/bin/wget");
        assert_eq!(spec.target, "../../bin/busybox");
        // Only the first colon separates: a target may hold more.
        assert_eq!(
            "/a:b:c".parse::<SymlinkSpec>().unwrap().target,
            "b:c".to_owned()
        );
        assert!("/a".parse::<SymlinkSpec>().is_err());
        assert!("/a:".parse::<SymlinkSpec>().is_err());
        assert!(":b".parse::<SymlinkSpec>().is_err());
    }

    #[test]
    fn image_paths_are_absolute_and_plain() {
        assert_eq!(
            normalize_image_path("/usr//bin/app").unwrap(),
            "usr/bin/app"
        );
        assert!(normalize_image_path("app").is_err());
        assert!(normalize_image_path("/../etc/passwd").is_err());
        assert!(normalize_image_path("/").is_err());
    }

    #[test]
    fn references_need_a_tag() {
        assert!(check_reference("localhost/autoscale-conformance/loadgen:0.1.0").is_ok());
        assert!(check_reference("localhost:5000/app:1").is_ok());
        assert!(check_reference("localhost:5000/app").is_err());
        assert!(check_reference("app").is_err());
    }
}
