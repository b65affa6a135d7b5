//! `autoscale-conformance`: grades a student submission against the exercise's rubric.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
