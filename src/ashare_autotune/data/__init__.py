"""Market data: the Market container, sources (synthetic, files, tushare) and validation."""
