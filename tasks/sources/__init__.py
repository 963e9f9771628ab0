"""One builder module per data source. Each exposes `build(ctx) -> {split: [Instance]}` (or named variants)."""
