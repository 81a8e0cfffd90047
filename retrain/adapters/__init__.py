"""Connections to systems outside the store: MLflow, the Prefect API, TFX/TFDV runtimes."""
