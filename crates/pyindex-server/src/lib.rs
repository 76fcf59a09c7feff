//! pyindex-server
