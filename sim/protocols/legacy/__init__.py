"""The legacy `stats.collect` protocol: the KDP, mwEmbed and v7 kanalytics plugins (policy) and their wire forms (codec)."""
