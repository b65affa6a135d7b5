//! No static check of its own: the GPU pool's checks (`gpu.*`) judge the training's
//! placement statically; whether a workload makes the autoscaler act is judged live.

use crate::checks::{CheckInfo, Collector, Input};

pub const CATALOGUE: &[CheckInfo] = &[];

pub fn check(_input: &Input<'_>, _out: &mut Collector) {}
