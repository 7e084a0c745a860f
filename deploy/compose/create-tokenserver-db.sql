-- Run once by the postgres image on an empty volume: the tokenserver and
-- the storage keep separate databases (each has its own migrations).
CREATE DATABASE tokenserver OWNER sync;
