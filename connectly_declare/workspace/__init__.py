"""Loading a workspace: declare.yaml, environments and manifests read with file:line:col,
cross-file checks, Unicode checks and the JSON Schemas (docs/architecture.md)."""
