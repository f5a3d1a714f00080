"""pqlr host side: data → train → quantise → integer graph → plan → model.bin → firmware → telemetry."""
__version__ = "0.1.0"
