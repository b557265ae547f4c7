//! The REST daemon: not implemented yet (issue 6).
