"""SavedModel export for TF Serving, and loading for out-of-distribution scoring."""
