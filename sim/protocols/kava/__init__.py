"""KAVA (`analytics.trackEvent`): the v7 kava plugin's behaviour (policy) and its wire forms (codec)."""
