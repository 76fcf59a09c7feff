//! pyindex-registry
