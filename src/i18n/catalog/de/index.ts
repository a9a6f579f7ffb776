import common from './common.js';
import imagine from './imagine.js';
import admin from './admin.js';
import member from './member.js';
import commands from './commands.js';

export default { common, imagine, admin, member, commands };
