//! pyindex-packaging
