"""The player model: sessions as timelines of player actions, their clock, scripts and ground truth."""
