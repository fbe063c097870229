"""The PyFlink monitoring job. Importing this package does not import PyFlink; only the job modules do."""
