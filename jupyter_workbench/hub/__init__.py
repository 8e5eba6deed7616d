"""The workbench on JupyterHub: the hub-managed service and what user servers need."""
