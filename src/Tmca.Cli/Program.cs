using System.CommandLine;
using Tmca.Cli;

var root = new RootCommand("tmca — language-guided medical image segmentation (TMCA) on a hand-written engine");
root.Subcommands.Add(OracleCommand.Build());
return root.Parse(args).Invoke();
