"""Market data: the Market container, sources (synthetic, files, tushare, baostock, akshare),
caches and validation."""
