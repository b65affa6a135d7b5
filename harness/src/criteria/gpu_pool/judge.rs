//! Judge: pure functions of spec, timeline and budget (to be moved here).
