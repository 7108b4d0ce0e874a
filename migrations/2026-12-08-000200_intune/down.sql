DROP TABLE intune_settings;
