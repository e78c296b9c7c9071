"""The email digest: which items (select), how they look (render), the messages (message)."""
