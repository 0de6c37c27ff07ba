"""The tables every stage shares: the events table (a row per beacon) and the ledger (a line per send).

Neutral ground between the stages that write them (file sinks, live load, the collector's
store) and those that read them (metrics, reconcile): each fact about a column is here once.
"""
