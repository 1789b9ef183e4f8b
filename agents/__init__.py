"""The LLM roles, their prompts and tools, the agent loop and the model layer."""
