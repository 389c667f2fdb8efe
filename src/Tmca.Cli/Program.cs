return Tmca.Cli.CliApp.Run(args);
