DROP TABLE held_inquiries;
