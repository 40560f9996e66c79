//! Real-cluster test fixtures.
