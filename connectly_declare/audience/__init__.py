"""Who receives a sendout: audiences resolved from CSV, JSON Lines and inline lists,
phone numbers normalised, paths kept inside the workspace (docs/architecture.md)."""
