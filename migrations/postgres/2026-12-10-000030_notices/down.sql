DROP TABLE notice_items;
