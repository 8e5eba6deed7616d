"""The workbench domain: one module per area, no HTTP. Every call checks ``access`` first."""
