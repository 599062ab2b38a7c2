"""External feature lookups: features fetched from an HTTP service, in parallel, cached.

    enricher.py      LookupEnricher: the step the PredictionService calls before the model
    client.py        FeatureClient: pooled HTTP calls with timeouts, retries, a deadline
    cache.py         LookupCache: lru_cache-backed, bounded, optional time-to-live
"""

from functions.lookups.cache import LookupCache
from functions.lookups.client import FeatureClient, LookupFailure
from functions.lookups.enricher import LookupEnricher, effective_specs

__all__ = ["FeatureClient", "LookupCache", "LookupEnricher", "LookupFailure",
           "effective_specs"]
