DROP TABLE package_deps;
