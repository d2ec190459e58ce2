"""The Taxonomy service: the category tree, the catalog's items, and the rerank of neighbours."""
