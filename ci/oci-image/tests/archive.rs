//! Builds a tiny image archive with the CLI in a temporary directory and checks it: digests
//! verify, the layout carries the names both importers read, rebuilding gives the same bytes,
//! and a damaged or incomplete archive is caught.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use oci_image::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, sha256_digest, verify};
use serde_json::Value;

const REFERENCE: &str = "localhost/autoscale-conformance/tiny:0.1.0";

fn oci_image(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oci-image"))
        .args(args)
        .output()
        .expect("the oci-image binary runs")
}

/// Builds the tiny image from two files in `dir` into `out`.
fn build_tiny(dir: &Path, out: &Path) -> Output {
    let binary = dir.join("app");
    std::fs::write(&binary, b"#!/bin/sh\necho tiny\n").unwrap();
    let config = dir.join("config.txt");
    std::fs::write(&config, b"setting=1\n").unwrap();
    oci_image(&[
        "build",
        "--name",
        REFERENCE,
        "--file",
        &format!("{}:/app:0755", binary.display()),
        "--file",
        &format!("{}:/etc/tiny/config.txt", config.display()),
        "--dir",
        "/tmp:1777",
        "--entrypoint",
        "/app",
        "--arg",
        "--verbose",
        "--env",
        "MODE=test",
        "--user",
        "65532",
        "--expose",
        "8080/tcp",
        "--out",
        out.to_str().unwrap(),
    ])
}

fn entries(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut reader = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut files = BTreeMap::new();
    for entry in reader.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    files
}

fn rewrite(entries: &BTreeMap<String, Vec<u8>>, out: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(out).unwrap());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
        }
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    builder.finish().unwrap();
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

struct Built {
    _dir: tempfile::TempDir,
    archive: PathBuf,
}

fn built() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("out/tiny.oci.tar");
    let output = build_tiny(dir.path(), &archive);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Built { _dir: dir, archive }
}

#[test]
fn digests_verify_from_index_to_layers() {
    let built = built();
    let verification = verify(&built.archive).expect("the archive verifies");
    assert_eq!(verification.images.len(), 1);
    assert_eq!(verification.blobs_checked, 3);
    let image = &verification.images[0];
    assert_eq!(image.reference.as_deref(), Some(REFERENCE));

    // Recompute independently of the library: every blob hashes to its file name.
    let files = entries(&built.archive);
    for (path, bytes) in &files {
        if let Some(hex) = path
            .strip_prefix("blobs/sha256/")
            .filter(|hex| !hex.is_empty())
        {
            assert_eq!(sha256_digest(bytes), format!("sha256:{hex}"), "{path}");
        }
    }
    let index = json(&files["index.json"]);
    let descriptor = &index["manifests"][0];
    assert_eq!(descriptor["digest"], image.manifest_digest.as_str());
    assert_eq!(
        descriptor["annotations"][ANNOTATION_CONTAINERD_NAME],
        REFERENCE
    );
    assert_eq!(descriptor["annotations"][ANNOTATION_REF_NAME], REFERENCE);
    assert_eq!(json(&files["oci-layout"])["imageLayoutVersion"], "1.0.0");

    let manifest_path = format!("blobs/{}", image.manifest_digest.replace(':', "/"));
    let manifest = json(&files[&manifest_path]);
    let config_path = format!("blobs/{}", image.config_digest.replace(':', "/"));
    let config = json(&files[&config_path]);
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/app"]));
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["--verbose"]));
    assert_eq!(config["config"]["User"], "65532");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&"MODE=test".into())
    );
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");

    // The layer holds the files with parents first, root-owned, fixed times and modes.
    let layer_path = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "/");
    let layer = flate2::read::GzDecoder::new(files[&format!("blobs/{layer_path}")].as_slice());
    let mut layer = tar::Archive::new(layer);
    let listing: Vec<(String, u32, u64)> = layer
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                header.mode().unwrap(),
                header.mtime().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listing,
        [
            ("app".to_owned(), 0o755, 0),
            ("etc/".to_owned(), 0o755, 0),
            ("etc/tiny/".to_owned(), 0o755, 0),
            ("etc/tiny/config.txt".to_owned(), 0o644, 0),
            ("tmp/".to_owned(), 0o1777, 0),
        ]
    );

    // kind reads RepoTags from manifest.json.
    let docker = json(&files["manifest.json"]);
    assert_eq!(docker[0]["RepoTags"], serde_json::json!([REFERENCE]));
    assert_eq!(docker[0]["Config"], config_path);
    // Old kind versions read `repositories`.
    let repositories = json(&files["repositories"]);
    assert!(repositories["localhost/autoscale-conformance/tiny"]["0.1.0"].is_string());

    let cli = oci_image(&["verify", built.archive.to_str().unwrap()]);
    assert!(cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stdout).contains(&image.manifest_digest));
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let first = built();
    let second = built();
    let first_bytes = std::fs::read(&first.archive).unwrap();
    let second_bytes = std::fs::read(&second.archive).unwrap();
    assert_eq!(sha256_digest(&first_bytes), sha256_digest(&second_bytes));
}

#[test]
fn a_damaged_blob_fails_verification() {
    let built = built();
    let mut files = entries(&built.archive);
    let layer = files
        .iter()
        .filter(|(path, _)| path.starts_with("blobs/sha256/") && !path.ends_with('/'))
        .max_by_key(|(_, bytes)| bytes.len())
        .map(|(path, _)| path.clone())
        .unwrap();
    let bytes = files.get_mut(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = built.archive.with_file_name("damaged.tar");
    rewrite(&files, &damaged);
    let error = verify(&damaged)
        .expect_err("a flipped byte is caught")
        .to_string();
    assert!(error.contains("hashes to"), "{error}");
    let cli = oci_image(&["verify", damaged.to_str().unwrap()]);
    assert!(!cli.status.success());
}

#[test]
fn a_missing_blob_or_index_fails_verification() {
    let built = built();
    let files = entries(&built.archive);
    let index = json(&files["index.json"]);
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "/");

    let mut without_manifest = files.clone();
    without_manifest.remove(&format!("blobs/{manifest}"));
    let broken = built.archive.with_file_name("no-manifest.tar");
    rewrite(&without_manifest, &broken);
    let error = verify(&broken)
        .expect_err("a missing blob is caught")
        .to_string();
    assert!(error.contains("missing"), "{error}");

    let mut without_index = files.clone();
    without_index.remove("index.json");
    rewrite(&without_index, &broken);
    assert!(verify(&broken).is_err());

    let mut misnamed = files;
    misnamed.insert(
        "repositories".into(),
        br#"{"localhost/other":{"1":"x"}}"#.to_vec(),
    );
    rewrite(&misnamed, &broken);
    let error = verify(&broken)
        .expect_err("a wrong name is caught")
        .to_string();
    assert!(error.contains("repositories"), "{error}");
}

#[test]
fn bad_build_inputs_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let out = dir.path().join("x.tar");
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--name",
                "no-tag",
                "--file",
                &format!("{}:/f", file.display()),
            ],
            "NAME:TAG",
        ),
        (
            &[
                "--name",
                REFERENCE,
                "--file",
                &format!("{}:relative", file.display()),
            ],
            "absolute",
        ),
        (
            &["--name", REFERENCE, "--file", "/no/such/file:/f"],
            "/no/such/file",
        ),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["build"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--entrypoint", "/f", "--out", out.to_str().unwrap()]);
        let output = oci_image(&argv);
        assert!(!output.status.success(), "{argv:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{argv:?}: {stderr}");
    }
    assert!(!out.exists());
}

/// The layer of `archive`, one line per entry: `path[ -> target] mode uid:gid mtime`.
fn layer_listing(archive: &Path) -> Vec<String> {
    let files = entries(archive);
    let index = json(&files["index.json"]);
    let manifest_path = format!(
        "blobs/{}",
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .replace(':', "/")
    );
    let manifest = json(&files[&manifest_path]);
    let layer_path = format!(
        "blobs/{}",
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .replace(':', "/")
    );
    let layer = flate2::read::GzDecoder::new(files[&layer_path].as_slice());
    let mut layer = tar::Archive::new(layer);
    layer
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            let target = match entry.link_name().unwrap() {
                Some(target) if header.entry_type() == tar::EntryType::Symlink => {
                    format!(" -> {}", target.display())
                }
                _ => String::new(),
            };
            format!(
                "{}{target} {:o} {}:{} {}",
                entry.path().unwrap().display(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mtime().unwrap(),
            )
        })
        .collect()
}

fn config_of(archive: &Path) -> Value {
    let files = entries(archive);
    let index = json(&files["index.json"]);
    let manifest = json(
        &files[&format!(
            "blobs/{}",
            index["manifests"][0]["digest"]
                .as_str()
                .unwrap()
                .replace(':', "/")
        )],
    );
    json(
        &files[&format!(
            "blobs/{}",
            manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .replace(':', "/")
        )],
    )
}

/// A busybox-like image: one binary, links to it (relative, absolute, in a new directory),
/// no entrypoint and `sh` as its command.
fn build_linked(dir: &Path, out: &Path, links: &[&str]) -> Output {
    let binary = dir.join("busybox");
    std::fs::write(&binary, b"#!/bin/sh\necho multi-call\n").unwrap();
    let mut args = vec![
        "build".to_owned(),
        "--name".to_owned(),
        "docker.io/library/busybox:latest".to_owned(),
        "--file".to_owned(),
        format!("{}:/bin/busybox:0755", binary.display()),
        "--arg".to_owned(),
        "sh".to_owned(),
        "--out".to_owned(),
        out.to_str().unwrap().to_owned(),
    ];
    for link in links {
        args.push("--symlink".to_owned());
        args.push((*link).to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    oci_image(&args)
}

const LINKS: [&str; 3] = [
    "/usr/bin/wget:../../bin/busybox",
    "/bin/sh:busybox",
    "/sbin/ifconfig:/bin/busybox",
];

#[test]
fn symlinks_are_sorted_root_owned_entries_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.oci.tar");
    let output = build_linked(dir.path(), &archive, &LINKS);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    verify(&archive).expect("the archive verifies");
    assert_eq!(
        layer_listing(&archive),
        [
            "bin/ 755 0:0 0",
            "bin/busybox 755 0:0 0",
            "bin/sh -> busybox 777 0:0 0",
            "sbin/ 755 0:0 0",
            "sbin/ifconfig -> /bin/busybox 777 0:0 0",
            "usr/ 755 0:0 0",
            "usr/bin/ 755 0:0 0",
            "usr/bin/wget -> ../../bin/busybox 777 0:0 0",
        ]
    );

    // The order of --symlink flags does not matter: the same bytes.
    let reordered = dir.path().join("reordered.oci.tar");
    let mut links = LINKS;
    links.reverse();
    assert!(
        build_linked(dir.path(), &reordered, &links)
            .status
            .success()
    );
    assert_eq!(
        sha256_digest(&std::fs::read(&archive).unwrap()),
        sha256_digest(&std::fs::read(&reordered).unwrap())
    );

    // No --entrypoint: no Entrypoint in the config, the command is Cmd (upstream busybox).
    let config = config_of(&archive);
    assert!(config["config"].get("Entrypoint").is_none(), "{config}");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
}

#[test]
fn bad_symlinks_and_an_image_with_nothing_to_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tar");
    let cases: [(&[&str], &str); 4] = [
        // A link where the binary is.
        (&["/bin/busybox:sh"], "appears twice"),
        // A link that would have to be a directory.
        (&["/usr:bin", "/usr/bin/wget:x"], "is a parent of"),
        (&["relative:busybox"], "absolute"),
        (&["/bin/sh"], "IMAGE_PATH:TARGET"),
    ];
    for (links, expected) in cases {
        let output = build_linked(dir.path(), &out, links);
        assert!(!output.status.success(), "{links:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{links:?}: {stderr}");
    }
    assert!(!out.exists());

    let file = dir.path().join("busybox");
    let output = oci_image(&[
        "build",
        "--name",
        REFERENCE,
        "--file",
        &format!("{}:/f", file.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--entrypoint"), "{stderr}");
    assert!(!out.exists());
}
