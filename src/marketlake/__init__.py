"""marketlake: a stock-market data lakehouse that runs on AWS or whole on one machine."""

__version__ = "0.1.0"
