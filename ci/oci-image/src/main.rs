//! `oci-image`: build and verify reproducible OCI image archives without a container engine.
//!
//! ```text
//! oci-image build --name localhost/app:0.1.0 --file target/app:/app:0755 \
//!     --entrypoint /app --user 65532 --out app.oci.tar
//! oci-image verify app.oci.tar
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use oci_image::{FileSpec, ImageSpec, SymlinkSpec, build, verify};

#[derive(Debug, Parser)]
#[command(
    name = "oci-image",
    version,
    about = "Reproducible OCI image archives from static files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an archive (OCI layout + manifest.json) importable by `ctr` and `kind load`.
    Build(Box<BuildArgs>),
    /// Check every digest and size from index.json down to the layers.
    Verify {
        archive: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// Full image reference, e.g. localhost/autoscale-conformance/inference-server:0.1.0.
    #[arg(long)]
    name: String,
    /// HOST_PATH:IMAGE_PATH[:OCTAL_MODE]; repeat for more files.
    #[arg(long = "file", required = true)]
    files: Vec<FileSpec>,
    /// Symbolic link IMAGE_PATH:TARGET (e.g. /bin/sh:busybox); repeatable.
    #[arg(long = "symlink")]
    symlinks: Vec<SymlinkSpec>,
    /// Empty directory IMAGE_PATH[:OCTAL_MODE] (e.g. /tmp:1777); repeatable.
    #[arg(long = "dir")]
    directories: Vec<String>,
    /// Entrypoint; repeat for an entrypoint with fixed arguments. Without one, the image
    /// has no Entrypoint and its first --arg is the command (upstream busybox's way).
    #[arg(long = "entrypoint", required_unless_present = "args")]
    entrypoint: Vec<String>,
    /// Default argument (the config's Cmd); repeatable.
    #[arg(long = "arg", allow_hyphen_values = true)]
    args: Vec<String>,
    /// KEY=VALUE; repeatable.
    #[arg(long = "env")]
    env: Vec<String>,
    /// User to run as, e.g. 65532 or 65532:65532.
    #[arg(long)]
    user: Option<String>,
    /// Working directory.
    #[arg(long)]
    workdir: Option<String>,
    /// Exposed port, e.g. 8080/tcp; repeatable.
    #[arg(long = "expose")]
    exposed_ports: Vec<String>,
    /// KEY=VALUE label; repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// OCI architecture.
    #[arg(long, default_value = "amd64")]
    arch: String,
    /// Store the layer as plain tar instead of gzip.
    #[arg(long)]
    uncompressed: bool,
    /// Where to write the archive.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let output = run(Cli::parse())?;
    // A reader that stops early (`| head -1`) is not an error.
    match std::io::stdout().write_all(output.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing to stdout")
        }
        _ => Ok(()),
    }
}

/// Runs the command; returns what to print.
fn run(cli: Cli) -> Result<String> {
    let mut output = String::new();
    match cli.command {
        Command::Build(args) => {
            let out = args.out.clone();
            let spec = image_spec(*args)?;
            let built =
                build(&spec, &out).with_context(|| format!("building {}", out.display()))?;
            writeln!(
                output,
                "{}\t{}\t{}\t{} bytes",
                out.display(),
                built.reference,
                built.manifest_digest,
                built.archive_size
            )?;
        }
        Command::Verify { archive, json } => {
            let verification =
                verify(&archive).with_context(|| format!("verifying {}", archive.display()))?;
            if json {
                writeln!(output, "{}", serde_json::to_string_pretty(&verification)?)?;
            } else {
                for image in &verification.images {
                    writeln!(
                        output,
                        "ok\t{}\t{}\t{} layer(s)",
                        image.reference.as_deref().unwrap_or("(unnamed)"),
                        image.manifest_digest,
                        image.layer_digests.len()
                    )?;
                }
                writeln!(output, "{} blobs verified", verification.blobs_checked)?;
            }
        }
    }
    Ok(output)
}

fn image_spec(args: BuildArgs) -> Result<ImageSpec> {
    let mut directories = Vec::new();
    for directory in &args.directories {
        let (path, mode) = match directory.split_once(':') {
            Some((path, mode)) => (
                path,
                u32::from_str_radix(mode, 8)
                    .with_context(|| format!("--dir {directory}: mode is not octal"))?,
            ),
            None => (directory.as_str(), 0o755),
        };
        directories.push((path.to_owned(), mode));
    }
    let mut labels = BTreeMap::new();
    for label in &args.labels {
        let Some((key, value)) = label.split_once('=') else {
            bail!("--label {label}: expected KEY=VALUE");
        };
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(ImageSpec {
        reference: args.name,
        files: args.files,
        symlinks: args.symlinks,
        directories,
        entrypoint: args.entrypoint,
        args: args.args,
        env: args.env,
        user: args.user,
        workdir: args.workdir,
        exposed_ports: args.exposed_ports,
        labels,
        architecture: args.arch,
        compress: !args.uncompressed,
    })
}
