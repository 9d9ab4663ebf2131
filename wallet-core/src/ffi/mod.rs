//! uniffi bindings (filled next).
