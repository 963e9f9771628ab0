"""The Mem-α reference agent: the memory tool environment, tool-call parsing, the memorising prompt."""
