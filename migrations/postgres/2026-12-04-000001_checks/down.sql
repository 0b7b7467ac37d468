DROP TABLE check_results;
