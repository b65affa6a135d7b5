//! Static checks (to be moved here from `checks/`).

use crate::checks::{CheckInfo, Collector, Input};

pub const CATALOGUE: &[CheckInfo] = &[];

pub fn check(_input: &Input<'_>, _out: &mut Collector) {}
