/* IRC numerics, as the three-digit strings that go on the wire: the Modern
 * IRC Client Protocol (modern.ircdocs.horse), and IRCv3 SASL for 900-908.
 * The comment gives the usual parameters after the client's nick. */
#ifndef PC_IRC_NUMERIC_H
#define PC_IRC_NUMERIC_H

/* Registration. */
#define PC_RPL_WELCOME           "001" /* :Welcome to <network>, <mask> */
#define PC_RPL_YOURHOST          "002" /* :Your host is <server>, running ... */
#define PC_RPL_CREATED           "003" /* :This server was created <date> */
#define PC_RPL_MYINFO            "004" /* <server> <ver> <umodes> <chmodes> */
#define PC_RPL_ISUPPORT          "005" /* <token>{ <token>} :are supported */

/* User modes, LUSERS. */
#define PC_RPL_UMODEIS           "221" /* <user modes> */
#define PC_RPL_LUSERCLIENT       "251" /* :There are <u> users and <i> ... */
#define PC_RPL_LUSEROP           "252" /* <ops> :operator(s) online */
#define PC_RPL_LUSERUNKNOWN      "253" /* <conns> :unknown connection(s) */
#define PC_RPL_LUSERCHANNELS     "254" /* <channels> :channels formed */
#define PC_RPL_LUSERME           "255" /* :I have <c> clients and <s> servers */
#define PC_RPL_TRYAGAIN          "263" /* <command> :Please wait a while */
#define PC_RPL_LOCALUSERS        "265" /* [<u> <max>] :Current local users */
#define PC_RPL_GLOBALUSERS       "266" /* [<u> <max>] :Current global users */

/* AWAY, USERHOST, ISON, WHOIS, WHOWAS, WHO. */
#define PC_RPL_AWAY              "301" /* <nick> :<away message> */
#define PC_RPL_USERHOST          "302" /* :[<reply>{ <reply>}] */
#define PC_RPL_ISON              "303" /* :[<nick>{ <nick>}] */
#define PC_RPL_UNAWAY            "305" /* :You are no longer marked as away */
#define PC_RPL_NOWAWAY           "306" /* :You have been marked as away */
#define PC_RPL_WHOISUSER         "311" /* <nick> <user> <host> * :<realname> */
#define PC_RPL_WHOISSERVER       "312" /* <nick> <server> :<server info> */
#define PC_RPL_WHOISOPERATOR     "313" /* <nick> :is an IRC operator */
#define PC_RPL_WHOWASUSER        "314" /* <nick> <user> <host> * :<realname> */
#define PC_RPL_ENDOFWHO          "315" /* <mask> :End of WHO list */
#define PC_RPL_WHOISIDLE         "317" /* <nick> <secs> <signon> :seconds ... */
#define PC_RPL_ENDOFWHOIS        "318" /* <nick> :End of /WHOIS list */
#define PC_RPL_WHOISCHANNELS     "319" /* <nick> :[prefix]<channel>{ ...} */

/* LIST, channel modes, topic, INVITE. */
#define PC_RPL_LISTSTART         "321" /* Channel :Users  Name */
#define PC_RPL_LIST              "322" /* <channel> <count> :<topic> */
#define PC_RPL_LISTEND           "323" /* :End of /LIST */
#define PC_RPL_CHANNELMODEIS     "324" /* <channel> <modestring> <args>... */
#define PC_RPL_CREATIONTIME      "329" /* <channel> <creation time> */
#define PC_RPL_WHOISACCOUNT      "330" /* <nick> <account> :is logged in as */
#define PC_RPL_NOTOPIC           "331" /* <channel> :No topic is set */
#define PC_RPL_TOPIC             "332" /* <channel> :<topic> */
#define PC_RPL_TOPICWHOTIME      "333" /* <channel> <nick> <setat> */
#define PC_RPL_INVITELIST        "336" /* <channel> */
#define PC_RPL_ENDOFINVITELIST   "337" /* :End of /INVITE list */
#define PC_RPL_INVITING          "341" /* <nick> <channel> */
#define PC_RPL_INVEXLIST         "346" /* <channel> <mask> */
#define PC_RPL_ENDOFINVEXLIST    "347" /* <channel> :End of invite exceptions */
#define PC_RPL_EXCEPTLIST        "348" /* <channel> <mask> */
#define PC_RPL_ENDOFEXCEPTLIST   "349" /* <channel> :End of ban exceptions */

/* VERSION, WHO, NAMES, bans, WHOWAS, MOTD, TIME. */
#define PC_RPL_VERSION           "351" /* <version> <server> :<comments> */
#define PC_RPL_WHOREPLY          "352" /* <chan> <user> <host> <srv> <nick>
                                        * <flags> :<hops> <realname> */
#define PC_RPL_NAMREPLY          "353" /* <symbol> <channel> :<nick>{ <nick>} */
#define PC_RPL_ENDOFNAMES        "366" /* <channel> :End of /NAMES list */
#define PC_RPL_BANLIST           "367" /* <channel> <mask> [<who> <set-ts>] */
#define PC_RPL_ENDOFBANLIST      "368" /* <channel> :End of channel ban list */
#define PC_RPL_ENDOFWHOWAS       "369" /* <nick> :End of WHOWAS */
#define PC_RPL_INFO              "371" /* :<string> */
#define PC_RPL_MOTD              "372" /* :<line of the motd> */
#define PC_RPL_ENDOFINFO         "374" /* :End of INFO list */
#define PC_RPL_MOTDSTART         "375" /* :- <server> Message of the day - */
#define PC_RPL_ENDOFMOTD         "376" /* :End of /MOTD command */
#define PC_RPL_YOUREOPER         "381" /* :You are now an IRC operator */
#define PC_RPL_TIME              "391" /* <server> :<time string> */

/* Errors. */
#define PC_ERR_UNKNOWNERROR      "400" /* <command>{ <subcommand>} :<info> */
#define PC_ERR_NOSUCHNICK        "401" /* <nick> :No such nick/channel */
#define PC_ERR_NOSUCHSERVER      "402" /* <server> :No such server */
#define PC_ERR_NOSUCHCHANNEL     "403" /* <channel> :No such channel */
#define PC_ERR_CANNOTSENDTOCHAN  "404" /* <channel> :Cannot send to channel */
#define PC_ERR_TOOMANYCHANNELS   "405" /* <channel> :You have joined too many */
#define PC_ERR_WASNOSUCHNICK     "406" /* <nick> :There was no such nickname */
#define PC_ERR_NOORIGIN          "409" /* :No origin specified */
#define PC_ERR_INVALIDCAPCMD     "410" /* <subcommand> :Invalid CAP command */
#define PC_ERR_NORECIPIENT       "411" /* :No recipient given (<command>) */
#define PC_ERR_NOTEXTTOSEND      "412" /* :No text to send */
#define PC_ERR_INPUTTOOLONG      "417" /* :Input line was too long */
#define PC_ERR_UNKNOWNCOMMAND    "421" /* <command> :Unknown command */
#define PC_ERR_NOMOTD            "422" /* :MOTD File is missing */
#define PC_ERR_NONICKNAMEGIVEN   "431" /* :No nickname given */
#define PC_ERR_ERRONEUSNICKNAME  "432" /* <nick> :Erroneus nickname */
#define PC_ERR_NICKNAMEINUSE     "433" /* <nick> :Nickname is already in use */
#define PC_ERR_NICKCOLLISION     "436" /* <nick> :Nickname collision KILL */
#define PC_ERR_USERNOTINCHANNEL  "441" /* <nick> <channel> :They aren't on it */
#define PC_ERR_NOTONCHANNEL      "442" /* <channel> :You're not on that chan */
#define PC_ERR_USERONCHANNEL     "443" /* <nick> <channel> :is already on it */
#define PC_ERR_NOTREGISTERED     "451" /* :You have not registered */
#define PC_ERR_NEEDMOREPARAMS    "461" /* <command> :Not enough parameters */
#define PC_ERR_ALREADYREGISTERED "462" /* :You may not reregister */
#define PC_ERR_PASSWDMISMATCH    "464" /* :Password incorrect */
#define PC_ERR_YOUREBANNEDCREEP  "465" /* :You are banned from this server */
#define PC_ERR_KEYSET            "467" /* <channel> :Channel key already set */
#define PC_ERR_CHANNELISFULL     "471" /* <channel> :Cannot join channel (+l) */
#define PC_ERR_UNKNOWNMODE       "472" /* <modechar> :is unknown mode char */
#define PC_ERR_INVITEONLYCHAN    "473" /* <channel> :Cannot join channel (+i) */
#define PC_ERR_BANNEDFROMCHAN    "474" /* <channel> :Cannot join channel (+b) */
#define PC_ERR_BADCHANNELKEY     "475" /* <channel> :Cannot join channel (+k) */
#define PC_ERR_BADCHANMASK       "476" /* <channel> :Bad Channel Mask */
#define PC_ERR_NEEDREGGEDNICK    "477" /* <channel> :Need to be logged in (not
                                        * in the modern docs) */
#define PC_ERR_NOPRIVILEGES      "481" /* :Permission Denied */
#define PC_ERR_CHANOPRIVSNEEDED  "482" /* <channel> :You're not channel op */
#define PC_ERR_CANTKILLSERVER    "483" /* :You cant kill a server! */
#define PC_ERR_NOOPERHOST        "491" /* :No O-lines for your host */
#define PC_ERR_UMODEUNKNOWNFLAG  "501" /* :Unknown MODE flag */
#define PC_ERR_USERSDONTMATCH    "502" /* :Cant change mode for other users */
#define PC_ERR_HELPNOTFOUND      "524" /* <subject> :No help available */
#define PC_ERR_INVALIDKEY        "525" /* <channel> :Key is not well-formed */

/* TLS, HELP, modes, SASL. */
#define PC_RPL_STARTTLS          "670" /* :STARTTLS successful, proceed */
#define PC_RPL_WHOISSECURE       "671" /* <nick> :is using a secure conn */
#define PC_ERR_STARTTLS          "691" /* :STARTTLS failed */
#define PC_ERR_INVALIDMODEPARAM  "696" /* <target> <mode> <param> :<text> */
#define PC_RPL_HELPSTART         "704" /* <subject> :<first line of help> */
#define PC_RPL_HELPTXT           "705" /* <subject> :<line of help> */
#define PC_RPL_ENDOFHELP         "706" /* <subject> :<last line of help> */
#define PC_ERR_NOPRIVS           "723" /* <priv> :Insufficient oper privs */
#define PC_RPL_LOGGEDIN          "900" /* <mask> <account> :You are now ... */
#define PC_RPL_LOGGEDOUT         "901" /* <mask> :You are now logged out */
#define PC_ERR_NICKLOCKED        "902" /* :You must use a nick assigned ... */
#define PC_RPL_SASLSUCCESS       "903" /* :SASL authentication successful */
#define PC_ERR_SASLFAIL          "904" /* :SASL authentication failed */
#define PC_ERR_SASLTOOLONG       "905" /* :SASL message too long */
#define PC_ERR_SASLABORTED       "906" /* :SASL authentication aborted */
#define PC_ERR_SASLALREADY       "907" /* :You have already authenticated */
#define PC_RPL_SASLMECHS         "908" /* <mechanisms> :are available ... */

#endif
