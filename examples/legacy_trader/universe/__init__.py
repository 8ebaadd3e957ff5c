"""Trading universe: which symbols the bot is allowed to trade today."""
