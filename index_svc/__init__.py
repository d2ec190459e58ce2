"""Index shard: category partitions of item vectors in FAISS, with durable writes."""
