"""Real-time co-editing: pycrdt (Yjs) documents, their store and their WebSocket rooms."""
