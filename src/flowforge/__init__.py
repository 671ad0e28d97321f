"""FlowForge: metadata-driven lakehouse pipelines from databases and files to Delta tables."""

__version__ = "0.1.0"
