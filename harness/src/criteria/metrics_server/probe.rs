//! Live probe (to be moved here from `probe/`).

use crate::cluster::TestNamespace;
use crate::criteria::ProbeContext;
use crate::verdict::Verdict;

pub async fn run(_namespace: &mut TestNamespace, _context: &ProbeContext<'_>) -> Vec<Verdict> {
    Vec::new()
}
