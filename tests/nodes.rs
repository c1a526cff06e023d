//! The end-to-end tests of the rebuilder network: coordinators and `debcover-rebuilder` nodes
//! as separate processes, real builds of real Debian packages, and the README's whole story.
//! One test binary; each module is one story.

#[path = "corroboration.rs"]
mod corroboration;
#[path = "rebuilder.rs"]
mod rebuilder;
#[path = "story.rs"]
mod story;
