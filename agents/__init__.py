"""LLM campaign agents: chat-model factory, creative library and vector store, drafting (the Campaign agents issue)."""
