DROP TABLE reconcile_items;
