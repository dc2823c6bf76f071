DROP TABLE lgwan_networks;
