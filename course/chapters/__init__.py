"""One package per chapter (its checks and its own lesson helpers); `registry` lists them all."""
