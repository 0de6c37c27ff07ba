"""The legacy `stats.collect` protocol: KDP, mwEmbed and v7 kanalytics plugins (policy), their wire forms (codec)."""
