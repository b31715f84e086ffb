"""critics."""
